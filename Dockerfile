# syntax=docker/dockerfile:1
# Build stage: compile TypeScript with the dev dependencies.
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json

# Production dependencies only, installed without dev tooling.
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# Runtime: the compiled CLI, production node_modules, non-root, no shell needed at run time.
FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# The CRD: `run --promotions DIR` validates promotion files against its schema (dist/sources/crd-schema.js
# reads ../../crds/).
COPY crds ./crds
COPY package.json ./
# Numeric, so that the kubelet can check runAsNonRoot without reading /etc/passwd (uid 1000 is `node`).
USER 1000:1000
ENTRYPOINT ["node", "/app/dist/cli.js"]
CMD ["help"]
