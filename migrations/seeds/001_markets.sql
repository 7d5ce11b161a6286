-- Reference data: the marketplaces the agents watch. Idempotent: safe to run again.
INSERT INTO markets (code, name, base_url, currency) VALUES
    ('amazon_us',  'Amazon US',  'https://www.amazon.com',  'USD'),
    ('ebay_us',    'eBay US',    'https://www.ebay.com',    'USD'),
    ('walmart_us', 'Walmart',    'https://www.walmart.com', 'USD'),
    ('bestbuy_us', 'Best Buy',   'https://www.bestbuy.com', 'USD'),
    ('amazon_de',  'Amazon DE',  'https://www.amazon.de',   'EUR')
ON CONFLICT (code) DO UPDATE
    SET name = EXCLUDED.name, base_url = EXCLUDED.base_url, currency = EXCLUDED.currency;
