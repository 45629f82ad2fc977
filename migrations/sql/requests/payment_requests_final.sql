-- Every UPDATE of a payment request passes mc_requests_guard_update.
CREATE TRIGGER payment_requests_final BEFORE UPDATE ON payment_requests
    FOR EACH ROW EXECUTE FUNCTION mc_requests_guard_update();
