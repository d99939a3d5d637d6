from django.conf import settings
from django.db import models


class Authority(models.Model):
    """An OHTK authority, reduced to what userinfo returns."""

    code = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=512)


class AuthorityUser(models.Model):
    """Links a user to an authority, as OHTK's accounts_authorityuser does."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="authorityuser")
    authority = models.ForeignKey(Authority, on_delete=models.CASCADE)
    role = models.CharField(max_length=3, default="REP")
