from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from oauth2_provider.models import get_application_model

from peer.models import Authority, AuthorityUser


class Command(BaseCommand):
    help = "Creates the users and the OAuth application listed in the PEER_CONFIG file (run migrate first)."

    def handle(self, *args, **options):
        User = get_user_model()
        for u in settings.PEER.get("users", []):
            user, _ = User.objects.get_or_create(username=u["username"])
            user.set_password(u["password"])
            user.email = u.get("email", "")
            user.first_name = u.get("first_name", "")
            user.last_name = u.get("last_name", "")
            user.is_superuser = user.is_staff = bool(u.get("is_superuser"))
            user.is_active = u.get("is_active", True)
            user.save()
            a = u.get("authority")
            if a:
                authority, _ = Authority.objects.update_or_create(code=a["code"], defaults={"name": a["name"]})
                AuthorityUser.objects.update_or_create(
                    user=user, defaults={"authority": authority, "role": u.get("role", "REP")}
                )

        app = settings.PEER["application"]
        Application = get_application_model()
        Application.objects.update_or_create(
            client_id=app["client_id"],
            defaults={
                "name": app.get("name", "ohtkhub"),
                "client_secret": app["client_secret"],
                "client_type": Application.CLIENT_CONFIDENTIAL,
                "authorization_grant_type": Application.GRANT_AUTHORIZATION_CODE,
                "redirect_uris": app["redirect_uris"],
                "skip_authorization": bool(app.get("skip_authorization")),
            },
        )
