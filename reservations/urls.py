"""URL routes of reservations (full paths, included at the site root)."""
urlpatterns: list = []
