"""Orders: accepted synchronously, processed asynchronously (stock sale, invoice number) by Celery."""
