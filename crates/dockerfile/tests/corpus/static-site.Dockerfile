FROM node:20-alpine AS builder
WORKDIR /site
COPY package*.json ./
RUN npm ci
COPY . .
RUN --mount=type=tmpfs,target=/tmp npm run build

FROM nginx:1.27-alpine
COPY --link --chmod=u=rw,go=r nginx.conf /etc/nginx/conf.d/default.conf
COPY --link --from=builder /site/dist /usr/share/nginx/html
HEALTHCHECK --interval=10s --timeout=2s --retries=5 CMD ["wget", "-qO-", "http://127.0.0.1/"]
EXPOSE 80/tcp
