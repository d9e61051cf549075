"""``/accounts/``: sign in and out, change one's password, API tokens.

The password-reset pages of ``django.contrib.auth.urls`` are left out on purpose: they send mail, and
lorasite sends none (admins create accounts and reset passwords in the admin).
"""

from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("password_change/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/revoke/", views.revoke, name="token-revoke"),
]
