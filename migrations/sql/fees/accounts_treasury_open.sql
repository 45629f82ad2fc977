-- See mc_accounts_treasury_open.
CREATE TRIGGER accounts_treasury_open BEFORE UPDATE OF status ON accounts
    FOR EACH ROW WHEN (NEW.status = 'closed' AND OLD.status <> 'closed')
    EXECUTE FUNCTION mc_accounts_treasury_open();
