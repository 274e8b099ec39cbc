# syntax=docker/dockerfile:1
# The gateway (and the simulators, same image): `docker compose up` builds it from docker-compose.yml,
# or `docker build -t facility-gateway .` alone.

# --- build: compile with the full toolchain (better-sqlite3 is a native module) ---------------
FROM node:20-bookworm AS build
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Dependencies first, so that a change of source code reuses this layer.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# The whole repository (less .dockerignore), then `npm run build`: the service and the simulators
# to dist/, and the web dashboard (dashboards/web, Vite) to dist/dashboards/web, which the gateway
# serves at `/`. A failed dashboard build fails the image build.
COPY . .
RUN npm run build && npm prune --omit=dev

# --- runtime: Node.js, the compiled code and the production dependencies only -------------------
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
  NODE_OPTIONS="--enable-source-maps --max-old-space-size=256" \
  GATEWAY_DATA_DIR=/data \
  GATEWAY_HTTP_PORT=8080
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/dashboards ./dashboards
# The image's unprivileged "node" user (uid 1000) owns the data directory: outbox, alarms, work
# orders, the generated admin token, the OPC UA certificates.
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
# 8080: HTTP API and dashboard. 1883: the embedded MQTT broker, used when GATEWAY_MQTT_URL is unset.
EXPOSE 8080 1883
# 200 for "ok" and "degraded" (e.g. InfluxDB unreachable: readings wait in the outbox), 503 for "down".
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.GATEWAY_HTTP_PORT||8080)+'/api/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# The initial old generation cannot be set in NODE_OPTIONS; see "Memory" in the README.
CMD ["node", "--initial-old-space-size=128", "dist/gateway/src/main.js"]
