"""logconfig, logconfig_json, logconfig_dict: the error and access logs
through Python's logging, as gunicorn's glogging does.

The server (src/wsgi/python_config.cpp) calls setup_logging() in the
master when one of the three is set; from then on its error log lines go
to log_error() and its access log lines to log_access(), in the master and
in the workers that inherit its interpreter.
"""
import json
import logging
import logging.config
import os

# gunicorn's CONFIG_DEFAULTS, which a logconfig_dict / logconfig_json updates.
_LOG_DEFAULTS = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": True,
                           "qualname": "gunicorn.error"},
        "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": True,
                            "qualname": "gunicorn.access"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "generic",
                    "stream": "ext://sys.stdout"},
        "error_console": {"class": "logging.StreamHandler", "formatter": "generic",
                          "stream": "ext://sys.stderr"},
    },
    "formatters": {
        "generic": {"format": "%(asctime)s [%(process)d] [%(levelname)s] %(message)s",
                    "datefmt": "[%Y-%m-%d %H:%M:%S %z]", "class": "logging.Formatter"},
    },
}
_error_logger = None
_access_logger = None


def setup_logging(logconfig_dict, json_path, file_path):
    """Configures logging from the first of logconfig_dict (the object a
    Python config file defined), a JSON file, an INI file that is given;
    returns whether one was."""
    global _error_logger, _access_logger
    if logconfig_dict:
        config = dict(_LOG_DEFAULTS)
        config.update(logconfig_dict)
        logging.config.dictConfig(config)
    elif json_path:
        if not os.path.exists(json_path):
            raise ValueError("Invalid value for logconfig_json: %r (no such file)" % json_path)
        config = dict(_LOG_DEFAULTS)
        with open(json_path) as f:
            config.update(json.load(f))
        logging.config.dictConfig(config)
    elif file_path:
        if not os.path.exists(file_path):
            raise ValueError("Invalid value for logconfig: %r (no such file)" % file_path)
        defaults = {"__file__": file_path, "here": os.path.dirname(file_path)}
        logging.config.fileConfig(file_path, defaults=defaults, disable_existing_loggers=False)
    else:
        return False
    _error_logger = logging.getLogger("gunicorn.error")
    _access_logger = logging.getLogger("gunicorn.access")
    return True


def log_error(level, message):
    _error_logger.log(level, message)


def log_access(line):
    _access_logger.info(line)
