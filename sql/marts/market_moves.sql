-- market_moves
-- Grain: one row per ticker per trade_date (every priced ticker; dollar columns for stocks only).
-- Depends on: marts.technicals_daily, marts.market_caps_daily, staging.stg_universe
-- Materialized: incremental by trade_date
-- Lookback: 64 sessions
--
-- How much each name moved on the day, in percent, in sigmas and in market value.
-- return_1d_pct is technicals_daily's (over adj_close). market_cap_change_usd = the shares in
-- force on the day (market_caps_daily.shares_outstanding) * (close - previous close): the value
-- the price move added or took away, on the split basis of close, so a split is no move and a
-- new share count does not read as one. Previous = the ticker's previous row (session it traded).
-- sigma_move = return_1d_pct / the sample stdev of the 63 daily returns before the day (today
-- excluded, so the move does not dampen its own yardstick); NULL with fewer than 63 or a zero
-- stdev. is_k_sigma_move: abs(sigma_move) >= market_moves_k_sigma(), NULL when sigma_move is.
-- Only role 'stock' gets market caps and dollar changes; index proxies, ^VIX and bond funds get
-- returns and sigmas. loser_rank / gainer_rank: 1 = the largest dollar loss / gain of the day,
-- among stocks that lost / gained (NULL otherwise). Lookback: 63 returns + the previous close.

with technicals as (
    select
        ticker,
        trade_date,
        close,
        return_1d_pct
    from marts.technicals_daily
    where trade_date >= $input_start_date
),

market_caps as (
    select
        ticker,
        trade_date,
        shares_outstanding,
        market_cap
    from marts.market_caps_daily
    where trade_date >= $input_start_date
),

universe as (
    select
        ticker,
        role,
        cohort
    from staging.stg_universe
),

-- Today's market cap joined once; the previous row's comes by lag over the same rows (a ticker
-- without a market cap on its previous session gets NULL, as a join on that date would).
with_caps as (
    select
        technicals.ticker,
        technicals.trade_date,
        technicals.close,
        technicals.return_1d_pct,
        market_caps.shares_outstanding,
        market_caps.market_cap
    from technicals
    left join market_caps
        on
            technicals.ticker = market_caps.ticker
            and technicals.trade_date = market_caps.trade_date
),

windows as (
    select
        ticker,
        trade_date,
        close,
        return_1d_pct,
        shares_outstanding,
        market_cap,
        lag(close) over by_ticker as prev_close,
        lag(market_cap) over by_ticker as prev_market_cap,
        stddev_samp(return_1d_pct) over before_63 as stdev_63,
        count(return_1d_pct) over before_63 as n_63
    from with_caps
    window
        by_ticker as (partition by ticker order by trade_date),
        before_63 as (by_ticker rows between 63 preceding and 1 preceding)
),

moves as (
    select
        windows.trade_date,
        windows.ticker,
        universe.role,
        universe.cohort,
        windows.close,
        windows.prev_close,
        windows.return_1d_pct,
        case when windows.n_63 = 63 then windows.stdev_63 end as return_stdev_63d_pct,
        case when universe.role = 'stock' then windows.shares_outstanding end as shares_outstanding,
        case when universe.role = 'stock' then windows.prev_market_cap end as market_cap_prev,
        case when universe.role = 'stock' then windows.market_cap end as market_cap,
        case
            when universe.role = 'stock'
                then windows.shares_outstanding * (windows.close - windows.prev_close)
        end as market_cap_change_usd
    from windows
    left join universe
        on windows.ticker = universe.ticker
),

sigmas as (
    select
        trade_date,
        ticker,
        role,
        cohort,
        close,
        prev_close,
        return_1d_pct,
        return_stdev_63d_pct,
        shares_outstanding,
        market_cap_prev,
        market_cap,
        market_cap_change_usd,
        case when return_stdev_63d_pct > 0 then return_1d_pct / return_stdev_63d_pct end as sigma_move,
        row_number() over (
            partition by trade_date, sign(market_cap_change_usd)
            order by abs(market_cap_change_usd) desc, ticker asc
        ) as size_rank
    from moves
),

ranked as (
    select
        trade_date,
        ticker,
        role,
        cohort,
        close,
        prev_close,
        return_1d_pct,
        return_stdev_63d_pct,
        sigma_move,
        abs(sigma_move) >= market_moves_k_sigma() as is_k_sigma_move,
        shares_outstanding,
        market_cap_prev,
        market_cap,
        market_cap_change_usd,
        -- One ranking for both sides: within a day's losers (or gainers), the largest dollar
        -- change first, ties by ticker.
        case when market_cap_change_usd < 0 then size_rank end as loser_rank,
        case when market_cap_change_usd > 0 then size_rank end as gainer_rank
    from sigmas
),

final as (
    select
        trade_date,
        ticker,
        role,
        cohort,
        close,
        prev_close,
        return_1d_pct,
        return_stdev_63d_pct,
        sigma_move,
        is_k_sigma_move,
        shares_outstanding,
        market_cap_prev,
        market_cap,
        market_cap_change_usd,
        loser_rank,
        gainer_rank
    from ranked
    where trade_date >= $start_date
)

select * from final
