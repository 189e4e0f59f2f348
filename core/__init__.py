"""Cross-cutting pieces every app uses: API clients and auth, errors, request context, health, metrics."""
