from django.urls import path

from vouch.activity import views

urlpatterns = [
    path("activity/", views.entry_list, name="activity"),
    path("activity/<uuid:pk>/", views.entry_detail, name="activity_entry"),
]
