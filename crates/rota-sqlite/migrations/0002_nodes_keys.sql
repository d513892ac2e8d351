-- Rota SQLite schema, version 2: worker nodes and API keys.
-- Times are INTEGER unix microseconds; JSON is TEXT.

-- Registered worker processes, upserted on every node heartbeat.
CREATE TABLE rota_nodes (
    id           TEXT    PRIMARY KEY NOT NULL,
    host         TEXT    NOT NULL,
    labels       TEXT    NOT NULL DEFAULT '{}',
    -- {"queue name": concurrency}
    queues       TEXT    NOT NULL DEFAULT '{}',
    running      INTEGER NOT NULL DEFAULT 0,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    draining_at  INTEGER
);

-- Pruning of nodes that stopped heartbeating.
CREATE INDEX rota_nodes_heartbeat_idx ON rota_nodes (heartbeat_at);

-- API keys: only a hash of the secret is stored.
CREATE TABLE rota_api_keys (
    id          TEXT    PRIMARY KEY NOT NULL,
    name        TEXT    NOT NULL,
    scope       TEXT    NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    secret_hash TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

-- Listing by creation time.
CREATE INDEX rota_api_keys_created_idx ON rota_api_keys (created_at, id);
