-- Integration of account deletion (0130) with sync uploads (0140): an upload reservation is new
-- work like a generation, an image or a board. Without this, an account already marked deleting
-- could still reserve an upload and get presigned PUTs; bytes put after the deletion job's
-- objects step would outlive the account (the reservation itself cascades away with the user
-- row, so the sweeper would never find them). Same trigger as 0130's, so the API answers
-- 410 ACCOUNT_DELETED (SQLSTATE AT410) and nothing is reserved. BEFORE INSERT also fires for
-- the reservation's renewal (INSERT … ON CONFLICT DO UPDATE).
CREATE TRIGGER uploads_owner_live BEFORE INSERT ON uploads
  FOR EACH ROW EXECUTE FUNCTION atelier_refuse_deleted_owner();
