-- Reference data: deal categories (two levels). Idempotent: safe to run again.
INSERT INTO categories (slug, name) VALUES
    ('electronics', 'Electronics'),
    ('home',        'Home & Kitchen'),
    ('fashion',     'Fashion'),
    ('toys',        'Toys & Games')
ON CONFLICT (slug) DO UPDATE SET name = EXCLUDED.name;

INSERT INTO categories (slug, name, parent_id)
SELECT v.slug, v.name, p.id
FROM (VALUES
        ('tvs',        'TVs',        'electronics'),
        ('laptops',    'Laptops',    'electronics'),
        ('headphones', 'Headphones', 'electronics'),
        ('appliances', 'Appliances', 'home')
     ) AS v (slug, name, parent)
JOIN categories p ON p.slug = v.parent
ON CONFLICT (slug) DO UPDATE SET name = EXCLUDED.name, parent_id = EXCLUDED.parent_id;
