-- Two facts about a failed post become fields of its document (see bot.models.Post):
-- * failure_kind: why it failed. Earlier versions kept that only in the words of last_error,
--   and the one kind a decision needs is "duplicate" (a retry of it would be refused again);
-- * requeued_as: the post it was queued again as. Earlier versions kept that only in the detail
--   of its 'requeued' event.
-- A one-time conversion of what earlier versions wrote: from now on both are written when they
-- happen, and nothing reads the prose back.

UPDATE posts SET doc = doc || '{"failure_kind": "duplicate"}'::jsonb
 WHERE status = 'failed' AND NOT doc ? 'failure_kind'
   AND position('duplicate content' IN lower(doc->>'last_error')) > 0;

UPDATE posts p SET doc = p.doc || jsonb_build_object('requeued_as', r.new_id)
  FROM (SELECT DISTINCT ON (post_id) post_id, substring(detail FROM '^queued again as post ([0-9]+)$')::bigint AS new_id
          FROM events
         WHERE kind = 'requeued' AND post_id IS NOT NULL AND detail ~ '^queued again as post [0-9]+$'
         ORDER BY post_id, id DESC) r
 WHERE p.id = r.post_id AND p.status = 'failed' AND NOT p.doc ? 'requeued_as';
