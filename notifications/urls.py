"""URL routes of notifications (full paths, included at the site root)."""
urlpatterns: list = []
