from django.urls import include, path
from rest_framework.routers import DefaultRouter

from calculator.api.views import ConfigurationViewSet, EstimateView, PlanView, PresetViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("presets", PresetViewSet, basename="preset")
router.register("configurations", ConfigurationViewSet, basename="configuration")

urlpatterns = [
    path("estimate/", EstimateView.as_view(), name="api-estimate"),
    path("plan/", PlanView.as_view(), name="api-plan"),
    path("", include(router.urls)),
]
