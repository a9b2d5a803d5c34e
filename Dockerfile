# One image for every service; compose picks the service with `ekatalog serve NAME`.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
COPY ekatalog ./ekatalog
RUN pip install --no-cache-dir . && useradd --system --uid 10001 ekatalog
USER ekatalog
ENTRYPOINT ["ekatalog"]
