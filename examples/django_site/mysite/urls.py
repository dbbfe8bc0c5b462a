from counter import naive, views
from django.urls import path

urlpatterns = [
    path("", views.home),
    path("naive/", naive.home),
]
