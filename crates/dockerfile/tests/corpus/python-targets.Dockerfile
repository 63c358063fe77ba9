FROM python:3.12-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /app

FROM base AS deps
RUN --mount=type=cache,target=/root/.cache/pip \
    --mount=type=bind,source=requirements.txt,target=requirements.txt \
    python -m pip install -r requirements.txt

FROM deps AS test
COPY . .
RUN python -m pytest

FROM deps AS docs
RUN --mount=type=bind,from=test,source=/app/docs,target=/docs,rw \
    mkdocs build -f /docs/mkdocs.yml -d /site

FROM base AS prod
COPY --from=deps /usr/local/lib/python3.12/site-packages /usr/local/lib/python3.12/site-packages
COPY --exclude=tests --exclude=*.pyc . .
USER nobody
CMD ["python", "-m", "app"]
