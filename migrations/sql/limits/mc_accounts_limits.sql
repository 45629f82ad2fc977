-- Limits. A write may not take an account beyond a limit, nor further beyond one:
--     balance - pending_debits >= -credit_limit,  balance + pending_credits <= balance_max,
-- unless it leaves the measure no worse than before. So an operator may lower a limit below what
-- an account already uses (the account can then only recover), and no interleaving of requests
-- can push an account past a limit: each row update is checked against the row it replaces.
-- The one exception is an operator's explicit override, which the ledger functions switch on
-- for a single booking and record on the trade and in the audit log.
CREATE FUNCTION mc_accounts_limits() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('mutualcredit.limit_override', true) = 'on' THEN
        RETURN NEW;
    END IF;
    IF NEW.balance - NEW.pending_debits < -NEW.credit_limit
       AND (TG_OP = 'INSERT'
            OR NEW.balance - NEW.pending_debits < OLD.balance - OLD.pending_debits) THEN
        RAISE EXCEPTION 'account % would go beyond its credit limit', NEW.code
            USING ERRCODE = 'check_violation', TABLE = 'accounts',
                  CONSTRAINT = 'accounts_credit_limit';
    END IF;
    IF NEW.balance_max IS NOT NULL AND NEW.balance + NEW.pending_credits > NEW.balance_max
       AND (TG_OP = 'INSERT'
            OR NEW.balance + NEW.pending_credits > OLD.balance + OLD.pending_credits) THEN
        RAISE EXCEPTION 'account % would go beyond its balance_max', NEW.code
            USING ERRCODE = 'check_violation', TABLE = 'accounts',
                  CONSTRAINT = 'accounts_balance_max';
    END IF;
    RETURN NEW;
END $$;
