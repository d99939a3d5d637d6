from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from oauth2_provider.decorators import protected_resource


@protected_resource()
@login_required
def userinfo(request):
    """Answers like OHTK's accounts userinfo view: the username is prefixed with the tenant's
    display name, and authority is null for users without an authority."""
    user = request.user
    link = getattr(user, "authorityuser", None)
    authority = None
    if link is not None:
        authority = {"id": link.authority.id, "name": link.authority.name, "code": link.authority.code}
    return JsonResponse(
        {
            "id": user.id,
            "username": f"{settings.PEER['tenant_name']}_{user.username}",
            "email": user.email,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "is_superuser": user.is_superuser,
            "authority": authority,
        }
    )
