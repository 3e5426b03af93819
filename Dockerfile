# One image for API, worker and migrations: `bun src/main.ts api|worker|migrate`.
FROM oven/bun:1.4.5-debian AS deps
WORKDIR /app
COPY package.json bun.lock bunfig.toml ./
# bun install applies patches/ (patchedDependencies in package.json): kafkajs' negative-timeout fix.
COPY patches ./patches
RUN bun install --frozen-lockfile --production

FROM oven/bun:1.4.5-debian
# The API's producer calls librdkafka through bun:ffi (src/kafka/rdkafka.ts).
RUN apt-get update && apt-get install -y --no-install-recommends librdkafka1 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY src ./src
COPY sql ./sql
USER bun
EXPOSE 8080 9464
CMD ["bun", "src/main.ts", "api"]
