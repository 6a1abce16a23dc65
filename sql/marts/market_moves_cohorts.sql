-- market_moves_cohorts
-- Grain: one row per trade_date per cohort ('ai', 'non_ai', 'all'), for every market_moves session.
-- Depends on: marts.market_moves
-- Materialized: incremental by trade_date
-- Lookback: 0 sessions
--
-- The day's market value change per cohort and for the whole stock universe ("$2 trillion
-- gone"), with its coverage. Stocks: role 'stock' tickers priced that day ('ai' and 'non_ai'
-- follow stg_universe.cohort, 'all' takes every stock, cohort or not; a second share class is no
-- stock). Members: the stocks with a dollar change and a previous market cap that day; the
-- totals are over them. n_without_market_cap counts the stocks with no market cap at all that
-- day (neither the previous nor the day's). market_cap_coverage_pct: the members' previous
-- market cap as a share of every stock's (the previous, or the day's when it has no previous
-- one), so "487 of 503 stocks, 96% of their market cap"; NULL when a stock has no market cap at
-- all (its share cannot be known). cohort_return_pct is cap-weighted: total change / total
-- previous market cap. n_k_sigma_moves counts every stock that moved market_moves_k_sigma()
-- sigmas or more, n_with_sigma those with a sigma reading (63 sessions of returns), with or
-- without a market cap. A cohort with no stocks that day has n_stocks 0 and NULL totals. The
-- biggest loser (gainer) is the member with the most negative (positive) dollar change; NULL
-- when no member lost (gained).

with moves as (
    select
        trade_date,
        ticker,
        role,
        cohort,
        market_cap_prev,
        market_cap,
        market_cap_change_usd,
        sigma_move,
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

stocks as (
    select
        moves.trade_date,
        cohorts.cohort,
        moves.ticker,
        moves.market_cap_prev,
        moves.market_cap_change_usd,
        moves.sigma_move,
        moves.is_k_sigma_move,
        coalesce(moves.market_cap_prev, moves.market_cap) as known_market_cap,
        moves.market_cap_change_usd is not null
        and moves.market_cap_prev is not null as is_member
    from moves
    inner join cohorts
        on
            moves.cohort = cohorts.cohort
            or cohorts.cohort = 'all'
    where moves.role = 'stock'
),

totals as (
    select
        trade_date,
        cohort,
        count(*) as n_stocks,
        count(*) filter (where is_member) as n_members,
        count(*) filter (where known_market_cap is null) as n_without_market_cap,
        sum(market_cap_change_usd) filter (where is_member) as total_market_cap_change_usd,
        sum(market_cap_prev) filter (where is_member) as total_market_cap_prev_usd,
        -- Apart from the members': summed in another order, all stocks' total could differ from
        -- the members' in the last bit, and a full coverage would read 100.00000000000001.
        sum(known_market_cap) filter (where not is_member) as other_market_cap_usd,
        arg_min(ticker, market_cap_change_usd) filter (
            where is_member and market_cap_change_usd < 0
        ) as biggest_loser_ticker,
        min(market_cap_change_usd) filter (
            where is_member and market_cap_change_usd < 0
        ) as biggest_loser_change_usd,
        arg_max(ticker, market_cap_change_usd) filter (
            where is_member and market_cap_change_usd > 0
        ) as biggest_gainer_ticker,
        max(market_cap_change_usd) filter (
            where is_member and market_cap_change_usd > 0
        ) as biggest_gainer_change_usd,
        count(sigma_move) as n_with_sigma,
        count(*) filter (where is_k_sigma_move) as n_k_sigma_moves
    from stocks
    group by trade_date, cohort
),

final as (
    select
        sessions.trade_date,
        cohorts.cohort,
        coalesce(totals.n_stocks, 0) as n_stocks,
        coalesce(totals.n_members, 0) as n_members,
        coalesce(totals.n_without_market_cap, 0) as n_without_market_cap,
        case
            when totals.n_without_market_cap = 0
                -- The share first (exactly 1 when every stock is a member), then the percent.
                then 100 * (
                    totals.total_market_cap_prev_usd
                    / (totals.total_market_cap_prev_usd + coalesce(totals.other_market_cap_usd, 0))
                )
        end as market_cap_coverage_pct,
        totals.total_market_cap_change_usd,
        totals.total_market_cap_prev_usd,
        pct_of(totals.total_market_cap_change_usd, totals.total_market_cap_prev_usd) as cohort_return_pct,
        totals.biggest_loser_ticker,
        totals.biggest_loser_change_usd,
        totals.biggest_gainer_ticker,
        totals.biggest_gainer_change_usd,
        coalesce(totals.n_with_sigma, 0) as n_with_sigma,
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
