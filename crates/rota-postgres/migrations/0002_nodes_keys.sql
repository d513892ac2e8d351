-- Rota's PostgreSQL schema, version 2: worker nodes and API keys.
--
-- Run by Rota's own migrator inside one transaction with `search_path` set to
-- the target schema, so names here are unqualified. Ids use the "C"
-- collation so listings order by bytes, as on SQLite.

-- Registered worker processes, upserted on every node heartbeat.
CREATE TABLE rota_nodes (
    id           text COLLATE "C" PRIMARY KEY,
    host         text        NOT NULL,
    labels       jsonb       NOT NULL DEFAULT '{}',
    -- {"queue name": concurrency}
    queues       jsonb       NOT NULL DEFAULT '{}',
    running      bigint      NOT NULL DEFAULT 0,
    started_at   timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    draining_at  timestamptz
);

-- Pruning of nodes that stopped heartbeating.
CREATE INDEX rota_nodes_heartbeat_idx ON rota_nodes (heartbeat_at);

-- API keys: only a hash of the secret is stored.
CREATE TABLE rota_api_keys (
    id          text COLLATE "C" PRIMARY KEY,
    name        text        NOT NULL,
    scope       text        NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    secret_hash text        NOT NULL,
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);

-- Listing by creation time.
CREATE INDEX rota_api_keys_created_idx ON rota_api_keys (created_at, id);
