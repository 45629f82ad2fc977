-- A network's code (its address) and scale (the meaning of every stored amount) never change.
CREATE FUNCTION mc_networks_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.code <> OLD.code OR NEW.scale <> OLD.scale THEN
        RAISE EXCEPTION 'a network''s code and scale are fixed at creation'
            USING ERRCODE = 'restrict_violation', TABLE = 'networks', CONSTRAINT = 'networks_fixed';
    END IF;
    RETURN NEW;
END $$;
