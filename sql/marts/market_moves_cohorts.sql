-- market_moves_cohorts
-- Grain: one row per trade_date per cohort ('ai', 'non_ai', 'all'), for every market_moves session.
-- Depends on: marts.market_moves
-- Materialized: incremental by trade_date
-- Lookback: 0 sessions
--
-- The day's market value change per cohort and for the whole stock universe ("$2 trillion
-- gone"). Members: stocks with a dollar change and a previous market cap that day; 'ai' and
-- 'non_ai' follow stg_universe.cohort, 'all' takes every member stock (cohort or not).
-- cohort_return_pct is cap-weighted: total change / total previous market cap. A cohort with
-- no members that day has n_members 0 and NULL totals. The biggest loser (gainer) is the member
-- with the most negative (positive) dollar change; NULL when no member lost (gained).

with moves as (
    select
        trade_date,
        ticker,
        role,
        cohort,
        market_cap_prev,
        market_cap_change_usd,
        is_k_sigma_move
    from marts.market_moves
    where trade_date >= $input_start_date
),

sessions as (
    select distinct trade_date
    from moves
),

cohorts as (
    select unnest(['ai', 'non_ai', 'all']) as cohort
),

members as (
    select
        moves.trade_date,
        cohorts.cohort,
        moves.ticker,
        moves.market_cap_prev,
        moves.market_cap_change_usd,
        moves.is_k_sigma_move
    from moves
    inner join cohorts
        on
            moves.cohort = cohorts.cohort
            or cohorts.cohort = 'all'
    where
        moves.role = 'stock'
        and moves.market_cap_change_usd is not null
        and moves.market_cap_prev is not null
),

totals as (
    select
        trade_date,
        cohort,
        count(*) as n_members,
        sum(market_cap_change_usd) as total_market_cap_change_usd,
        sum(market_cap_prev) as total_market_cap_prev_usd,
        arg_min(ticker, market_cap_change_usd) filter (
            where market_cap_change_usd < 0
        ) as biggest_loser_ticker,
        min(market_cap_change_usd) filter (where market_cap_change_usd < 0) as biggest_loser_change_usd,
        arg_max(ticker, market_cap_change_usd) filter (
            where market_cap_change_usd > 0
        ) as biggest_gainer_ticker,
        max(market_cap_change_usd) filter (where market_cap_change_usd > 0) as biggest_gainer_change_usd,
        count(*) filter (where is_k_sigma_move) as n_k_sigma_moves
    from members
    group by trade_date, cohort
),

final as (
    select
        sessions.trade_date,
        cohorts.cohort,
        coalesce(totals.n_members, 0) as n_members,
        totals.total_market_cap_change_usd,
        totals.total_market_cap_prev_usd,
        pct_of(totals.total_market_cap_change_usd, totals.total_market_cap_prev_usd) as cohort_return_pct,
        totals.biggest_loser_ticker,
        totals.biggest_loser_change_usd,
        totals.biggest_gainer_ticker,
        totals.biggest_gainer_change_usd,
        coalesce(totals.n_k_sigma_moves, 0) as n_k_sigma_moves
    from sessions
    cross join cohorts
    left join totals
        on
            sessions.trade_date = totals.trade_date
            and cohorts.cohort = totals.cohort
    where sessions.trade_date >= $start_date
)

select * from final
