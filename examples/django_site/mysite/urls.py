from counter import async_views, naive, views
from django.urls import path

urlpatterns = [
    path("", views.home),
    path("naive/", naive.home),
    path("async/", async_views.home),
]
