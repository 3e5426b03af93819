# One image for API, worker and migrations: `bun src/main.ts api|worker|migrate`.
FROM oven/bun:1.4.5-debian AS deps
WORKDIR /app
COPY package.json bun.lock bunfig.toml ./
# bun install applies patches/ (patchedDependencies in package.json): kafkajs' negative-timeout fix.
COPY patches ./patches
RUN bun install --frozen-lockfile --production

# librdkafka for the producer and the consumer (bun:ffi, src/kafka/rdkafka.ts): the pinned, checksummed build of
# scripts/librdkafka.sh, into .cache/librdkafka where the binding looks first.
FROM oven/bun:1.4.5-debian AS librdkafka
RUN apt-get update && apt-get install -y --no-install-recommends curl ca-certificates unzip && rm -rf /var/lib/apt/lists/*
COPY scripts/librdkafka.sh /tmp/
RUN bash /tmp/librdkafka.sh /app/.cache/librdkafka

FROM oven/bun:1.4.5-debian
WORKDIR /app
COPY --from=librdkafka /app/.cache/librdkafka ./.cache/librdkafka
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY src ./src
COPY sql ./sql
USER bun
EXPOSE 8080 9464
CMD ["bun", "src/main.ts", "api"]
