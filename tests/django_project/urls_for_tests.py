from django.shortcuts import render
from django.urls import path
from mysite.urls import urlpatterns as example_patterns

from sharedstate.django import state
from sharedstate.examples import SomeObjWithIO

global_obj_io = state.object("global_obj_io", SomeObjWithIO, 0)


def home_io(request):
    return render(request, "counter/index.html", {"number": global_obj_io.query()})


urlpatterns = [*example_patterns, path("io/", home_io)]
