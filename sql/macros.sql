-- Macros shared by models: a formula used twice lives here.

-- Percent distance of a from b, in percent units (-1.88 means a is 1.88% below b).
create or replace macro pct_diff(a, b) as 100 * (a / b - 1);
