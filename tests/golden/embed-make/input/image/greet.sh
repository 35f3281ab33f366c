#!/bin/sh
echo "hello $2" > /etc/greeting
