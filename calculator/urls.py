from django.urls import path

from calculator import views

urlpatterns = [
    path("", views.calculator, name="calculator"),
    path("c/<str:slug>/", views.permalink, name="permalink"),
]
