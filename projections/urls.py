"""URL routes of projections (full paths, included at the site root)."""
urlpatterns: list = []
