"""URL routes of inventory (full paths, included at the site root)."""
urlpatterns: list = []
