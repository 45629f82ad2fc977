-- The periodic fees' sweeper (a background job in every worker, any number of workers and
-- replicas): charges one batch of at most `p_batch` accounts for one (rule, boundary) that is
-- due, and answers how many accounts it went through (0: nothing is due). Runs that end (no
-- account left) are closed on the way, and the next boundary looked at, in the same call.
--
-- A boundary is due once `p_grace` has passed since it (so that every booking whose entries are
-- dated before it has committed), for every membership or demurrage rule with
-- starts_at <= boundary < ends_at; the boundaries a stopped service missed are charged one after
-- another, oldest first, each once. Its run (`fee_runs`) is made by the first sweeper to come,
-- with the rule as it stood at the boundary (frozen: a change made after it applies from the
-- next boundary), and locked FOR UPDATE SKIP LOCKED by each batch, so one sweeper at a time works on
-- it and the others go to other rules. A batch takes the next accounts in id order (of the
-- rule's account kind, in one of its statuses now, opened before the boundary), locks them and
-- the treasury in id order (as every writer does), books each one's charge with mc_book_fee,
-- and moves the run's cursor past them, in one transaction: killed at any point, a run resumes
-- where its last batch committed, and the unique index fee_charges_period_once refuses a second
-- charge of an account for a boundary whatever happens.
--
-- Demurrage reads the balance at the boundary (the last entry dated before it, and the periodic
-- charges of earlier boundaries booked late as if booked on time), not the balance when the
-- sweeper runs, so the charge does not depend on when, or how often, it ran. An account's status
-- is read when its batch is charged.
CREATE FUNCTION mc_charge_fees(p_batch integer, p_grace interval DEFAULT '10 seconds')
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz := clock_timestamp();
    v_rule fee_rules;
    v_frozen fee_rules;
    v_due timestamptz;
    v_run fee_runs%ROWTYPE;
    v_ids uuid[];
    v_account accounts%ROWTYPE;
    v_treasury accounts%ROWTYPE;
    v_balance bigint;
    v_fee record;
    v_charged bigint := 0;
BEGIN
    PERFORM set_config('mutualcredit.actor', 'system:fees', true),
            set_config('mutualcredit.reason', '', true);
    FOR v_rule IN
        SELECT * FROM fee_rules r
        WHERE r.kind <> 'levy' AND r.starts_at <= v_now - p_grace
        ORDER BY r.id
    LOOP
        -- Each rule's boundaries in turn: a finished run (or one with no account to charge)
        -- moves on to the rule's next boundary in the same call.
        LOOP
            SELECT min(f.due_at) INTO v_due FROM fee_runs f
            WHERE f.rule_id = v_rule.id AND f.finished_at IS NULL;
            IF v_due IS NULL THEN
                SELECT mc_fee_boundary(v_rule.period,
                                       coalesce(max(f.due_at) + interval '1 microsecond',
                                                v_rule.starts_at))
                INTO v_due FROM fee_runs f WHERE f.rule_id = v_rule.id;
            END IF;
            EXIT WHEN v_due > v_now - p_grace
                   OR (v_rule.ends_at IS NOT NULL AND v_due >= v_rule.ends_at);
            -- The rule as it stood at the boundary (its history's last version by then), so a
            -- change made after the boundary (during the grace, the run, or while the service
            -- was down) applies from the next one.
            INSERT INTO fee_runs (rule_id, due_at, network_id, rule, started_at)
            SELECT v_rule.id, v_due, v_rule.network_id,
                   coalesce((SELECT c.after || jsonb_build_object('network_id', v_rule.network_id,
                                                                   'updated_at', c.changed_at)
                             FROM fee_rule_changes c
                             WHERE c.rule_id = v_rule.id AND c.changed_at <= v_due
                             ORDER BY c.changed_at DESC, c.id DESC LIMIT 1),
                            to_jsonb(v_rule)),
                   v_now
            ON CONFLICT DO NOTHING;
            SELECT * INTO v_run FROM fee_runs f
            WHERE f.rule_id = v_rule.id AND f.due_at = v_due
            FOR UPDATE SKIP LOCKED;
            -- Another sweeper is on this run: leave the rule to it.
            EXIT WHEN NOT FOUND;
            CONTINUE WHEN v_run.finished_at IS NOT NULL;

            v_frozen := jsonb_populate_record(NULL::fee_rules, v_run.rule);
            -- A treasury closed since the boundary (the rule named another one since, and the old
            -- one was closed): the charges go to the rule's treasury now.
            IF (SELECT a.status FROM accounts a WHERE a.id = v_frozen.treasury_id) = 'closed' THEN
                v_frozen.treasury_id := v_rule.treasury_id;
            END IF;
            v_ids := ARRAY(
                SELECT a.id FROM accounts a
                WHERE a.network_id = v_run.network_id AND a.kind = v_frozen.account_kind
                  AND a.status = ANY (v_frozen.statuses) AND a.created_at < v_due
                  AND a.id <> v_frozen.treasury_id
                  AND (v_run.after_account_id IS NULL OR a.id > v_run.after_account_id)
                ORDER BY a.id LIMIT p_batch);
            IF cardinality(v_ids) = 0 THEN
                UPDATE fee_runs SET finished_at = clock_timestamp()
                WHERE rule_id = v_run.rule_id AND due_at = v_run.due_at;
                CONTINUE;
            END IF;
            -- One rule's failure (a treasury closed by hand, say) must not stop the others:
            -- its batch is undone, the failure logged, and the sweeper goes on to the next rule.
            BEGIN
                PERFORM 1 FROM accounts a WHERE a.id = ANY (v_ids || v_frozen.treasury_id)
                ORDER BY a.id FOR UPDATE;
                FOR v_account IN SELECT * FROM accounts a WHERE a.id = ANY (v_ids) ORDER BY a.id LOOP
                    -- Its status may have changed since the batch was chosen.
                    CONTINUE WHEN NOT (v_account.status = ANY (v_frozen.statuses));
                    SELECT * INTO v_treasury FROM accounts a WHERE a.id = v_frozen.treasury_id;
                    -- The balance at the boundary, with the periodic charges of earlier boundaries
                    -- that were booked after it (a run catching up) counted as of their own
                    -- boundary, as they would have been had the service run throughout.
                    v_balance := coalesce((SELECT e.balance_after FROM entries e
                                           WHERE e.account_id = v_account.id AND e.booked_at < v_due
                                           ORDER BY e.booked_at DESC, e.id DESC LIMIT 1), 0)
                                 - coalesce((SELECT sum(c.amount) FROM fee_charges c
                                             WHERE c.account_id = v_account.id AND c.due_at < v_due
                                               AND c.created_at >= v_due), 0)
                                 + coalesce((SELECT sum(c.amount) FROM fee_charges c
                                             WHERE c.treasury_id = v_account.id AND c.due_at < v_due
                                               AND c.created_at >= v_due), 0);
                    v_fee := mc_periodic_fee(v_frozen, v_account, v_balance, v_treasury);
                    IF v_fee.amount > 0 OR v_fee.waived > 0 THEN
                        PERFORM mc_book_fee(v_run.network_id, v_frozen, v_account, v_fee.amount,
                                            v_fee.waived, v_fee.past_limit, NULL, v_due,
                                            'system:fees', clock_timestamp());
                        v_charged := v_charged + v_fee.amount;
                    END IF;
                END LOOP;
                UPDATE fee_runs
                SET after_account_id = v_ids[cardinality(v_ids)],
                    accounts = accounts + cardinality(v_ids), charged = charged + v_charged
                WHERE rule_id = v_run.rule_id AND due_at = v_run.due_at;
            EXCEPTION WHEN OTHERS THEN
                RAISE WARNING 'fee rule % (network %) at %: %', v_rule.code, v_rule.network_id,
                    v_due, SQLERRM;
                EXIT;
            END;
            RETURN cardinality(v_ids);
        END LOOP;
    END LOOP;
    RETURN 0;
END $$;
