-- Messages: a received message that carried an idempotency key stays as a tombstone (payload
-- cleared, consumed_at set) so that a resend with the same key is still deduplicated; messages
-- without a key are deleted when received. recv takes the oldest unread message per topic.
ALTER TABLE notifications ADD COLUMN consumed_at BIGINT;
DROP INDEX notifications_take_idx;
CREATE INDEX notifications_unread_idx ON notifications (destination_id, topic, message_id)
    WHERE consumed_at IS NULL;
