-- fear_greed_daily
-- Grain: one row per trade_date (every session on which a universe ticker has a price).
-- Depends on: staging.stg_prices_daily, staging.stg_universe, staging.stg_putcall_daily,
--     marts.technicals_daily
-- Materialized: incremental by trade_date
-- Lookback: 630 sessions
--
-- CNN's Fear & Greed method on the universe's own data (see docs/marts/fear_greed_daily.md).
-- Seven raw components; each is scored 0-100 by its percentile rank (trailing_pct_rank) among
-- its own last 504 observations, today's included, NULL with fewer. Put/call and volatility
-- are inverted: a high reading is fear, so their score is the share of the window >= today.
-- The score is the mean of the component scores that exist; components_used says how many.
-- Lookback 630 = 504 ranked observations + 125 sessions for the index proxy's 125-DMA, the
-- longest window this model computes itself (the stocks' 52-week highs and lows come from
-- technicals_daily, which has its own look-back).
-- Tickers come from stg_universe roles, among tickers with any prices: fear_greed_index_ticker()
-- (SPY) is preferred among index proxies and fear_greed_treasury_ticker() (TLT) among
-- treasuries, otherwise the first ticker alphabetically. The junk-bond benchmark is the
-- investment-grade ticker (LQD), else another treasury (IEF), else the treasury itself.
-- Put/call reads the equity scope, or the total scope on a day without an equity reading; each
-- scope is ranked against its own history, since their levels differ (~0.6 against ~0.9).

with universe as (
    select
        ticker,
        role
    from staging.stg_universe
),

priced_tickers as (
    select distinct ticker
    from staging.stg_prices_daily
),

candidates as (
    select
        universe.ticker,
        universe.role
    from universe
    inner join priced_tickers
        on universe.ticker = priced_tickers.ticker
),

roles as (
    select
        coalesce(
            max(ticker) filter (where role = 'index_proxy' and ticker = fear_greed_index_ticker()),
            min(ticker) filter (where role = 'index_proxy')
        ) as index_ticker,
        min(ticker) filter (where role = 'volatility') as volatility_ticker,
        coalesce(
            max(ticker) filter (where role = 'treasury' and ticker = fear_greed_treasury_ticker()),
            min(ticker) filter (where role = 'treasury')
        ) as treasury_ticker,
        min(ticker) filter (where role = 'high_yield') as high_yield_ticker,
        coalesce(
            min(ticker) filter (where role = 'investment_grade'),
            min(ticker) filter (where role = 'treasury' and ticker != fear_greed_treasury_ticker()),
            max(ticker) filter (where role = 'treasury')
        ) as credit_benchmark_ticker
    from candidates
),

prices as (
    select
        ticker,
        trade_date,
        close,
        adj_close,
        volume
    from staging.stg_prices_daily
    where trade_date >= $input_start_date
),

sessions as (
    select distinct prices.trade_date
    from prices
    inner join universe
        on prices.ticker = universe.ticker
),

-- Single-ticker components: moving averages over close, returns over adj_close, as in
-- technicals_daily; a window short of history is NULL.
role_prices as (
    select
        prices.ticker,
        prices.trade_date,
        prices.close,
        prices.adj_close
    from prices
    inner join roles
        on prices.ticker in (
            roles.index_ticker,
            roles.volatility_ticker,
            roles.treasury_ticker,
            roles.high_yield_ticker,
            roles.credit_benchmark_ticker
        )
),

role_windows as (
    select
        ticker,
        trade_date,
        close,
        avg(close) over (by_ticker rows between 124 preceding and current row) as avg_125,
        count(close) over (by_ticker rows between 124 preceding and current row) as n_125,
        avg(close) over (by_ticker rows between 49 preceding and current row) as avg_50,
        count(close) over (by_ticker rows between 49 preceding and current row) as n_50,
        pct_diff(adj_close, lag(adj_close, 20) over by_ticker) as return_20d_pct
    from role_prices
    window by_ticker as (partition by ticker order by trade_date)
),

role_series as (
    select
        ticker,
        trade_date,
        return_20d_pct,
        pct_diff(close, case when n_125 = 125 then avg_125 end) as pct_above_sma_125,
        pct_diff(close, case when n_50 = 50 then avg_50 end) as pct_above_sma_50
    from role_windows
),

ticker_components as (
    select
        sessions.trade_date,
        index_series.pct_above_sma_125 as momentum_pct,
        volatility_series.pct_above_sma_50 as volatility_pct,
        index_series.return_20d_pct - treasury_series.return_20d_pct as safe_haven_pct,
        high_yield_series.return_20d_pct - benchmark_series.return_20d_pct as junk_bond_pct
    from sessions
    cross join roles
    left join role_series as index_series
        on
            sessions.trade_date = index_series.trade_date
            and roles.index_ticker = index_series.ticker
    left join role_series as volatility_series
        on
            sessions.trade_date = volatility_series.trade_date
            and roles.volatility_ticker = volatility_series.ticker
    left join role_series as treasury_series
        on
            sessions.trade_date = treasury_series.trade_date
            and roles.treasury_ticker = treasury_series.ticker
    left join role_series as high_yield_series
        on
            sessions.trade_date = high_yield_series.trade_date
            and roles.high_yield_ticker = high_yield_series.ticker
    left join role_series as benchmark_series
        on
            sessions.trade_date = benchmark_series.trade_date
            and roles.credit_benchmark_ticker = benchmark_series.ticker
),

-- Universe stocks: 52-week (252-session) closing highs and lows, and up/down volume, from
-- technicals_daily's windows (high_52w and low_52w exist with 252 sessions of history; a
-- positive return_1d_pct is a rise of adj_close).
stock_windows as (
    select
        technicals.ticker,
        technicals.trade_date,
        technicals.volume,
        technicals.high_52w is not null as has_year,
        coalesce(technicals.is_52w_high, false) as is_high,
        coalesce(technicals.is_52w_low, false) as is_low,
        technicals.return_1d_pct
    from marts.technicals_daily as technicals
    inner join universe
        on
            technicals.ticker = universe.ticker
            and universe.role = 'stock'
    where technicals.trade_date >= $input_start_date
),

stock_daily as (
    select
        trade_date,
        count(*) filter (where has_year) as n_with_year,
        count(*) filter (where is_high) as n_highs,
        count(*) filter (where is_low) as n_lows,
        coalesce(sum(volume) filter (where return_1d_pct > 0), 0) as up_volume,
        coalesce(sum(volume) filter (where return_1d_pct < 0), 0) as down_volume,
        count(return_1d_pct) as n_changes
    from stock_windows
    group by trade_date
),

breadth_windows as (
    select
        trade_date,
        sum(up_volume) over last_21 as up_volume_21,
        sum(up_volume + down_volume) over last_21 as up_down_volume_21,
        count(*) over last_21 as n_21
    from stock_daily
    where n_changes > 0
    window last_21 as (order by trade_date rows between 20 preceding and current row)
),

stock_components as (
    select
        stock_daily.trade_date,
        case
            when stock_daily.n_with_year > 0
                then 100.0 * (stock_daily.n_highs - stock_daily.n_lows) / stock_daily.n_with_year
        end as price_strength_pct,
        case
            when breadth_windows.n_21 = 21 and breadth_windows.up_down_volume_21 > 0
                then 100.0 * breadth_windows.up_volume_21 / breadth_windows.up_down_volume_21
        end as breadth_pct
    from stock_daily
    left join breadth_windows
        on stock_daily.trade_date = breadth_windows.trade_date
),

-- Put/call: the 5-observation average of each scope; only session dates count (a feed row on a
-- holiday is skipped), and a ratio <= 0 is a broken row.
putcall as (
    select
        stg_putcall_daily.trade_date,
        stg_putcall_daily.scope,
        stg_putcall_daily.ratio
    from staging.stg_putcall_daily
    inner join sessions
        on stg_putcall_daily.trade_date = sessions.trade_date
    where
        stg_putcall_daily.trade_date >= $input_start_date
        and stg_putcall_daily.scope in ('equity', 'total')
        and stg_putcall_daily.ratio > 0
),

putcall_windows as (
    select
        trade_date,
        scope,
        case when count(ratio) over last_5 = 5 then avg(ratio) over last_5 end as ratio_ma_5
    from putcall
    window last_5 as (partition by scope order by trade_date rows between 4 preceding and current row)
),

putcall_components as (
    select
        trade_date,
        max(ratio_ma_5) filter (where scope = 'equity') as equity_ratio_ma_5,
        max(ratio_ma_5) filter (where scope = 'total') as total_ratio_ma_5
    from putcall_windows
    group by trade_date
),

components as (
    select
        sessions.trade_date,
        cast(ticker_components.momentum_pct as double) as momentum_pct,
        cast(stock_components.price_strength_pct as double) as price_strength_pct,
        cast(stock_components.breadth_pct as double) as breadth_pct,
        cast(
            coalesce(putcall_components.equity_ratio_ma_5, putcall_components.total_ratio_ma_5) as double
        ) as putcall_ratio_ma_5,
        case
            when putcall_components.equity_ratio_ma_5 is not null then 'equity'
            when putcall_components.total_ratio_ma_5 is not null then 'total'
        end as putcall_scope,
        cast(putcall_components.equity_ratio_ma_5 as double) as putcall_equity_ratio_ma_5,
        cast(putcall_components.total_ratio_ma_5 as double) as putcall_total_ratio_ma_5,
        cast(ticker_components.volatility_pct as double) as volatility_pct,
        cast(ticker_components.safe_haven_pct as double) as safe_haven_pct,
        cast(ticker_components.junk_bond_pct as double) as junk_bond_pct
    from sessions
    left join ticker_components
        on sessions.trade_date = ticker_components.trade_date
    left join stock_components
        on sessions.trade_date = stock_components.trade_date
    left join putcall_components
        on sessions.trade_date = putcall_components.trade_date
),

-- One row per component reading (UNPIVOT drops the NULLs), signed so that high means greed.
-- Both put/call scopes are ranked, each in its own series; the day's scope picks one below.
readings as (
    select
        trade_date,
        component,
        case
            when
                component in ('putcall_equity_ratio_ma_5', 'putcall_total_ratio_ma_5', 'volatility_pct')
                then -raw_value
            else raw_value
        end as greed_value
    from (
        unpivot (
            select
                trade_date,
                momentum_pct,
                price_strength_pct,
                breadth_pct,
                putcall_equity_ratio_ma_5,
                putcall_total_ratio_ma_5,
                volatility_pct,
                safe_haven_pct,
                junk_bond_pct
            from components
        )
        on momentum_pct, price_strength_pct, breadth_pct, putcall_equity_ratio_ma_5,
        putcall_total_ratio_ma_5, volatility_pct, safe_haven_pct, junk_bond_pct
        into name component value raw_value
    )
),

reading_history as (
    select
        trade_date,
        component,
        greed_value,
        count(greed_value) over trailing_504 as n_504,
        cume_dist(order by greed_value) over trailing_504 as cume_dist_504
    from readings
    window
        trailing_504 as (
            partition by component order by trade_date rows between 503 preceding and current row
        )
),

reading_scores as (
    select
        trade_date,
        component,
        trailing_pct_rank(cume_dist_504, n_504, 504) as score
    from reading_history
),

component_scores as (
    select
        trade_date,
        max(score) filter (where component = 'momentum_pct') as momentum_score,
        max(score) filter (where component = 'price_strength_pct') as price_strength_score,
        max(score) filter (where component = 'breadth_pct') as breadth_score,
        max(score) filter (where component = 'putcall_equity_ratio_ma_5') as putcall_equity_score,
        max(score) filter (where component = 'putcall_total_ratio_ma_5') as putcall_total_score,
        max(score) filter (where component = 'volatility_pct') as volatility_score,
        max(score) filter (where component = 'safe_haven_pct') as safe_haven_score,
        max(score) filter (where component = 'junk_bond_pct') as junk_bond_score
    from reading_scores
    where trade_date >= $start_date
    group by trade_date
),

chosen_scores as (
    select
        components.trade_date,
        component_scores.momentum_score,
        component_scores.price_strength_score,
        component_scores.breadth_score,
        case components.putcall_scope
            when 'equity' then component_scores.putcall_equity_score
            when 'total' then component_scores.putcall_total_score
        end as putcall_score,
        component_scores.volatility_score,
        component_scores.safe_haven_score,
        component_scores.junk_bond_score
    from components
    inner join component_scores
        on components.trade_date = component_scores.trade_date
),

present_scores as (
    select
        trade_date,
        momentum_score,
        price_strength_score,
        breadth_score,
        putcall_score,
        volatility_score,
        safe_haven_score,
        junk_bond_score,
        list_filter(
            [
                momentum_score,
                price_strength_score,
                breadth_score,
                putcall_score,
                volatility_score,
                safe_haven_score,
                junk_bond_score
            ],
            lambda s: s is not null
        ) as present
    from chosen_scores
),

-- The index: the equal-weight mean of the component scores that exist.
scores as (
    select
        trade_date,
        list_avg(present) as score,
        len(present) as components_used,
        momentum_score,
        price_strength_score,
        breadth_score,
        putcall_score,
        volatility_score,
        safe_haven_score,
        junk_bond_score
    from present_scores
),

final as (
    select
        components.trade_date,
        scores.score,
        fear_greed_label(scores.score) as label,  -- noqa: RF04
        coalesce(scores.components_used, 0) as components_used,
        components.momentum_pct,
        scores.momentum_score,
        components.price_strength_pct,
        scores.price_strength_score,
        components.breadth_pct,
        scores.breadth_score,
        components.putcall_ratio_ma_5,
        components.putcall_scope,
        scores.putcall_score,
        components.volatility_pct,
        scores.volatility_score,
        components.safe_haven_pct,
        scores.safe_haven_score,
        components.junk_bond_pct,
        scores.junk_bond_score
    from components
    left join scores
        on components.trade_date = scores.trade_date
    where components.trade_date >= $start_date
)

select * from final
