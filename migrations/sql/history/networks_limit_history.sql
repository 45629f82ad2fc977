-- Every change of a network's default limits (only when one of them really changes).
CREATE TRIGGER networks_limit_history
    AFTER UPDATE OF default_credit_limit, default_balance_max ON networks
    FOR EACH ROW
    WHEN (OLD.default_credit_limit IS DISTINCT FROM NEW.default_credit_limit
          OR OLD.default_balance_max IS DISTINCT FROM NEW.default_balance_max)
    EXECUTE FUNCTION mc_limit_history();
