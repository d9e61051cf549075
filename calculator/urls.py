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
    path("compare/", views.compare, name="compare"),
    path("mine/", views.mine, name="mine"),
    path("mine/<str:slug>/edit/", views.mine_edit, name="mine-edit"),
    path("mine/<str:slug>/delete/", views.mine_delete, name="mine-delete"),
]
