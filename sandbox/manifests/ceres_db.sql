-- The demo database: several tables, 220,000 rows in all, some non-ASCII text.
-- Deterministic (no random()), so every sandbox holds the same data.
\set ON_ERROR_STOP on
BEGIN;
CREATE SCHEMA billing;

CREATE TABLE public.customers (
    id          bigint PRIMARY KEY,
    name        text NOT NULL,
    email       text NOT NULL UNIQUE,
    country     char(2) NOT NULL,
    created_at  timestamptz NOT NULL
);
INSERT INTO public.customers
SELECT i,
       (ARRAY['Zoë Müller','Søren Ørsted','José Núñez','Łukasz Żółć','田中 太郎','Ольга Иванова','Ana Ćosić','Renée Dupré'])[1 + i % 8] || ' #' || i,
       'customer' || i || '@example.com',
       (ARRAY['DE','DK','ES','PL','JP','RU','HR','FR'])[1 + i % 8],
       timestamptz '2024-01-01 00:00:00+00' + (i || ' minutes')::interval
FROM generate_series(1, 50000) AS i;

CREATE TABLE public.products (
    id          integer PRIMARY KEY,
    sku         text NOT NULL UNIQUE,
    description text NOT NULL,
    price_cents integer NOT NULL CHECK (price_cents >= 0)
);
INSERT INTO public.products
SELECT i, 'SKU-' || lpad(i::text, 6, '0'),
       (ARRAY['Crème brûlée kit','Smørrebrød board','Café au lait mug','Größe XL T-shirt','東京 guidebook','Ёлка ornament','Jalapeño sauce ☕'])[1 + i % 7],
       100 + (i * 37) % 99900
FROM generate_series(1, 10000) AS i;

CREATE TABLE public.orders (
    id          bigint PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES public.customers (id),
    product_id  integer NOT NULL REFERENCES public.products (id),
    quantity    integer NOT NULL,
    status      text NOT NULL,
    placed_at   timestamptz NOT NULL
);
INSERT INTO public.orders
SELECT i, 1 + (i * 7) % 50000, 1 + (i * 13) % 10000, 1 + i % 5,
       (ARRAY['placed','paid','shipped','delivered','refunded'])[1 + i % 5],
       timestamptz '2024-06-01 00:00:00+00' + (i || ' seconds')::interval
FROM generate_series(1, 100000) AS i;

CREATE TABLE billing.payments (
    id           bigint PRIMARY KEY,
    order_id     bigint NOT NULL REFERENCES public.orders (id),
    amount       numeric(12, 2) NOT NULL,
    currency     char(3) NOT NULL,
    reference    text
);
INSERT INTO billing.payments
SELECT i, i * 2, ((i * 31) % 100000) / 100.0,
       (ARRAY['EUR','DKK','PLN','JPY'])[1 + i % 4],
       CASE WHEN i % 10 = 0 THEN NULL ELSE 'pay-' || md5(i::text) END
FROM generate_series(1, 40000) AS i;

CREATE TABLE billing.audit_log (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor     text NOT NULL,
    action    text NOT NULL,
    details   jsonb NOT NULL,
    at        timestamptz NOT NULL
);
INSERT INTO billing.audit_log (actor, action, details, at)
SELECT 'service-' || i % 17, (ARRAY['login','export','refund','update'])[1 + i % 4],
       jsonb_build_object('request', i, 'note', 'Überprüfung №' || i, 'ok', i % 3 <> 0),
       timestamptz '2024-09-01 00:00:00+00' + (i || ' seconds')::interval
FROM generate_series(1, 20000) AS i;

ANALYZE;
COMMIT;
