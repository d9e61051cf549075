from django.urls import path

from calculator import views

urlpatterns = [
    path("", views.calculator, name="calculator"),
    path("save/", views.save, name="save"),
    path("presets/", views.presets, name="presets"),
    path("learn/", views.learn, name="learn"),
    path("learn/quiz/", views.quiz, name="quiz"),
    path("learn/accuracy/", views.accuracy, name="accuracy"),
    path("c/<str:slug>/", views.permalink, name="permalink"),
]
