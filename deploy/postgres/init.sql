-- Run once by the PostgreSQL image on an empty volume: one database per service.
CREATE DATABASE ekatalog_vendors;
CREATE DATABASE ekatalog_catalog;
CREATE DATABASE ekatalog_orders;
CREATE DATABASE ekatalog_reporting;
