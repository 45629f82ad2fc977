-- Every UPDATE of a transfer passes mc_transfers_guard_update.
CREATE TRIGGER transfers_final BEFORE UPDATE ON transfers
    FOR EACH ROW EXECUTE FUNCTION mc_transfers_guard_update();
