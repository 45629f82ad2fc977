-- Every UPDATE of a trade passes mc_trades_guard_update.
CREATE TRIGGER trades_final BEFORE UPDATE ON trades
    FOR EACH ROW EXECUTE FUNCTION mc_trades_guard_update();
