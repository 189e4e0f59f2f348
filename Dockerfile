# Production-like image: one image, run as web (Daphne), worker or beat by docker-compose.yml.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=config.settings.production
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN SECRET_KEY=build-only python manage.py collectstatic --noinput
EXPOSE 8000
# As `make run` serves: one Daphne process per core on one port (WEB_WORKERS), on uvloop.
CMD ["python", "scripts/serve.py", "--host", "0.0.0.0", "--port", "8000"]
