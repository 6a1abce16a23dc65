-- Macros shared by models: a formula used twice lives here.

-- Percent distance of a from b, in percent units (-1.88 means a is 1.88% below b).
create or replace macro pct_diff(a, b) as 100 * (a / b - 1);

-- Percentile rank, 0-100, of a row's value within its trailing window of n values (itself
-- included): the share of the values that are <= it. The window's largest value ranks 100, its
-- smallest 100/n. NULL until the window holds n values (n_values: the window's count of them,
-- NULLs not counted). Takes the window's cume_dist(order by value), which is that share as a
-- fraction (ties count as <=): the count is recovered exactly (a rounding of count/n * n) so
-- that the rank is 100.0 * count / n to the last bit. A framed cume_dist counts without
-- building each row's window as a list (30,000 lists of 504 values for putcall_sentiment, most
-- of its build time).
create or replace macro trailing_pct_rank(window_cume_dist, n_values, n) as (
    case when n_values = n then 100.0 * round(window_cume_dist * n) / n end
);

-- putcall_sentiment regime: pct_rank_252 at or below this is 'complacent' (few puts).
create or replace macro putcall_complacent_max_pct_rank() as 20;

-- putcall_sentiment regime: pct_rank_252 at or above this is 'fearful' (many puts).
create or replace macro putcall_fearful_min_pct_rank() as 80;

-- options_sentiment: expiries this many calendar days away or nearer are "short-term".
create or replace macro options_short_term_days() as 30;

-- options_sentiment: a contract whose last trade is more than this many calendar days before
-- the snapshot (or that never traded) is stale and left out.
create or replace macro options_stale_days() as 5;

-- options_sentiment: an implied volatility below this is a provider placeholder (yfinance
-- writes 1e-5), and the contract is left out.
create or replace macro options_placeholder_iv() as 1e-4;

-- fundamentals_quarterly, valuation_daily, valuation_cohorts ---------------------------------

-- part as a percent of whole, in percent units (a margin: 100 * gross_profit / revenue);
-- NULL when whole is 0.
create or replace macro pct_of(part, whole) as 100 * part / nullif(whole, 0);

-- A valuation multiple (price / EPS, market cap / revenue): NULL unless the base is positive,
-- since a P/E on a loss means nothing and would otherwise rank as the cheapest.
create or replace macro positive_multiple(amount, base) as (
    case when base > 0 then amount / base end
);

-- Is the quarter ending period_end one of the n fiscal quarters ending with anchor_period_end?
-- Quarters are taken as 91 days with half a quarter of slack, which absorbs 13/14-week
-- fiscal quarters and 90-92-day calendar ones (n quarters span less than n * 91 - 45 days).
create or replace macro is_within_quarters(period_end, anchor_period_end, n) as (
    period_end <= anchor_period_end
    and period_end > anchor_period_end - (n * 91 - 45)
);

-- Is the quarter ending period_end the one n quarters before anchor_period_end (n = 4: the
-- year-ago quarter), give or take half a quarter.
create or replace macro is_quarters_before(period_end, anchor_period_end, n) as (
    period_end >= anchor_period_end - (n * 91 + 45)
    and period_end <= anchor_period_end - (n * 91 - 45)
);

-- valuation_daily, valuation_cohorts: a percentile rank against the series' own history is
-- NULL until the series has this many (non-NULL) observations.
create or replace macro valuation_pct_rank_min_obs() as 20;

-- valuation_daily: an incremental build ranks a stock's written days against its earlier
-- multiples pair by pair when it has at most this many days to write (a night), and by sorting
-- the stock's values once when it has more (a backfill): the same counts, at the lower cost.
create or replace macro valuation_rank_pairs_max_days() as 20;

-- valuation_daily: a valuation snapshot older than this many calendar days is not used (shares
-- fall back to the last reported diluted shares; forward EPS is NULL).
create or replace macro valuation_snapshot_max_age_days() as 10;

-- Percentile rank of x against every value of its series up to and including this row (an
-- expanding window; series = the partition, ordered_by = the date), 0-100, by the same
-- definition as trailing_pct_rank: the share of the values that are <= x. NULL when x is NULL
-- or the series has fewer than valuation_pct_rank_min_obs() values so far; NULLs are not
-- values. The window may see only the series' latest days (an incremental build): n_before and
-- le_before then say how many values the series had before them and how many of those are <= x
-- (both 0 when the window sees the whole series, which gives 100 * cume_dist exactly). A window
-- aggregate, so it runs where window functions may.
create or replace macro expanding_pct_rank(x, series, ordered_by, n_before, le_before) as (
    case
        when
            x is not null
            and n_before + count(x) over (
                partition by series
                order by ordered_by
                rows between unbounded preceding and current row
            ) >= valuation_pct_rank_min_obs()
            -- cume_dist ordered by x (NULLs last, so never <= x) times the rows so far is how
            -- many values so far are <= x, recovered exactly by the rounding. Every window here
            -- shares one partition and order: the rows are sorted once per series.
            then 100 * (
                (
                    le_before + round(
                        cume_dist(order by x asc nulls last) over (
                            partition by series
                            order by ordered_by
                            rows between unbounded preceding and current row
                        ) * count(*) over (
                            partition by series
                            order by ordered_by
                            rows between unbounded preceding and current row
                        )
                    )
                ) / (
                    n_before + count(x) over (
                        partition by series
                        order by ordered_by
                        rows between unbounded preceding and current row
                    )
                )
            )
    end
);

-- valuation_daily, valuation_cohorts: how many of a series' earlier values are at or below x
-- (NULLs are not values). An aggregate: use it in a grouped query.
create or replace macro count_at_or_below(earlier_value, x) as (
    count(earlier_value) filter (where earlier_value <= x)
);

-- putcall_sentiment: the regime a put/call percentile rank (0-100) reads as; NULL stays NULL.
create or replace macro putcall_regime(pct_rank) as (
    case
        when pct_rank <= putcall_complacent_max_pct_rank() then 'complacent'
        when pct_rank >= putcall_fearful_min_pct_rank() then 'fearful'
        when pct_rank is not null then 'neutral'
    end
);

-- fear_greed_daily: CNN's bands for a 0-100 score. Each boundary belongs to the band nearer
-- neutral: [0, 25) extreme fear, [25, 45) fear, [45, 55] neutral, (55, 75] greed,
-- (75, 100] extreme greed; NULL stays NULL.
create or replace macro fear_greed_label(score) as (
    case
        when score < 25 then 'extreme fear'
        when score < 45 then 'fear'
        when score <= 55 then 'neutral'
        when score <= 75 then 'greed'
        when score is not null then 'extreme greed'
    end
);

-- stg_fundamentals_quarterly: the stock split a quarter-on-quarter share-count ratio implies, or
-- 1. A ratio of at least 1.45 within 4% of a common split factor (3:2, 2, 3, 4, 5, ..., 50) is
-- a split: buybacks and issuance move diluted shares by a few percent a quarter, and a merger
-- that exactly doubles the count in one quarter is rare enough to check by hand (the factor
-- shows in split_factor). NULL ratios (first or last quarter) give 1.
create or replace macro split_factor_of(ratio) as (
    coalesce(
        list_filter(
            [1.5, 2, 3, 4, 5, 6, 7, 8, 10, 15, 20, 25, 30, 40, 50],
            lambda f: abs(ratio / f - 1) <= 0.04
        )[1],
        1
    )
);

-- fear_greed_daily: the index proxy preferred for momentum and safe-haven demand, when the
-- universe lists it as an index_proxy with prices; otherwise the first index proxy by name.
create or replace macro fear_greed_index_ticker() as 'SPY';

-- fear_greed_daily: the treasury fund preferred for safe-haven demand (long bonds react most
-- to a flight to safety), when listed with role treasury and priced; otherwise the first by
-- name. The junk-bond benchmark falls back to a treasury other than this one (IEF).
create or replace macro fear_greed_treasury_ticker() as 'TLT';

-- valuation_daily: trailing EPS and TTM revenue are NULL once the latest quarter known on the
-- date ended more than this many calendar days before it. A company reports about 20-75 days
-- after a quarter ends and the next quarter ends 91 days later, so a live feed stays under
-- ~170; past 200 at least one report is missing and the trailing figures are stale.
create or replace macro valuation_fundamentals_max_age_days() as 200;

-- valuation_cohorts: a cohort's aggregate multiple, sum(market_cap) / sum(market_cap /
-- multiple), over the members that have the multiple (positive_multiple leaves it NULL for a
-- loss or no data): market cap over earnings (or sales) summed, so large companies weigh in
-- proportion to their size. An aggregate: use it in a grouped query.
create or replace macro aggregate_multiple(market_cap, multiple) as (
    sum(case when multiple is not null then market_cap end) / sum(market_cap / multiple)
);

-- market_moves: a daily return of at least this many standard deviations of the ticker's
-- previous 63 daily returns (either way) is a k-sigma move (is_k_sigma_move).
create or replace macro market_moves_k_sigma() as 3;

-- cohort_sma_distance: the 'top_n' cohort is this many largest stocks by market cap that day.
create or replace macro cohort_top_n() as 10;

-- cohort_sma_distance: tickers left out of every cohort of that table (the top N, 'ai' and
-- 'non_ai'), e.g. ['BRK-B'] to keep a holding company out of the "largest names".
create or replace macro cohort_excluded_tickers() as []::varchar[];

-- market_brief: the index and sector proxies whose moves the brief reports, in this order.
create or replace macro brief_index_tickers() as ['SPY', 'QQQ', 'XLK'];

-- market_brief: the tickers whose moving-average supports and option sentiment it reports.
create or replace macro brief_focus_tickers() as ['SPY', 'QQQ', 'XLK', 'NVDA'];

-- market_brief: how many of the biggest dollar losers and gainers it lists.
create or replace macro brief_mover_count() as 5;
