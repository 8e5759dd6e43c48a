-- The pre-delivery check is decided in Rust (waotp_core::DeliveryCheck::decide) over facts the
-- store loads, as on SQLite; the local inbox's delivery is a Rust transaction around it. Their
-- PL/pgSQL versions from migration 0002 (which answered in English strings) go.
DROP FUNCTION waotp_deliver_to_inbox(uuid, uuid, text, text[], text, bigint);
DROP FUNCTION waotp_delivery_check(uuid, uuid, text, text[], bigint);
