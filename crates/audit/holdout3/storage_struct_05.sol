pragma solidity ^0.5.0;

contract Orders {
    struct Order {
        address maker;
        uint256 amount;
    }

    Order[] public orders;

    function place(uint256 amount) public {
        Order memory o = Order(msg.sender, amount);
        orders.push(o);
    }

    function cancel(uint256 id) public {
        Order storage o = orders[id];
        require(o.maker == msg.sender);
        o.amount = 0;
    }
}
