from counter.views import SomeObj
from django.shortcuts import render
from django.urls import path
from mysite.urls import urlpatterns as example_patterns

from sharedstate.django import astate, state
from sharedstate.examples import SomeObjWithIO

global_obj_io = state.object("global_obj_io", SomeObjWithIO, 0)
# the example's global_obj, for async views: one object with the sync view's
global_obj_async = astate.object("global_obj", SomeObj, 0)


def home_io(request):
    return render(request, "counter/index.html", {"number": global_obj_io.query()})


async def home_async(request):
    return render(request, "counter/index.html", {"number": await global_obj_async.query()})


urlpatterns = [*example_patterns, path("io/", home_io), path("async/", home_async)]
