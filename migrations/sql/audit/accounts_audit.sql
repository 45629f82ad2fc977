-- Balances move with trades, which have their own records: only the account's settings here.
CREATE TRIGGER accounts_audit
    AFTER INSERT OR UPDATE OF name, status, credit_limit, balance_max, revert_at ON accounts
    FOR EACH ROW EXECUTE FUNCTION mc_audit_change(
        'balance', 'pending_debits', 'pending_credits');
